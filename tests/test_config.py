from pathlib import Path

import pytest
import yaml

from omuda.config import Config, config_from_dict, config_to_dict, load_config, parse_override
from omuda.errors import OmudaError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_defaults_are_the_paper_settings():
    cfg = Config()
    assert cfg.model.backbone == "mit_b5"
    assert cfg.data.crop_size == (512, 512)
    assert cfg.train.iters == 40000 and cfg.train.lr == 6e-5 and cfg.train.warmup_iters == 1500
    assert cfg.adaptation.pseudo_threshold == 0.968 and cfg.adaptation.ema_alpha == 0.999


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.parent.name in ("gta2cs", "syn2cs")])
def test_real_configs_keep_the_original_daformer_and_mic_behaviour(path):
    cfg = load_config(path)
    adaptation = cfg.adaptation
    assert adaptation.source_loss_average == "all"
    assert adaptation.classmix_classes == "batch" and adaptation.augment_decision == "batch"
    assert adaptation.color_jitter_formulas == "kornia" and adaptation.mask_grid == "round"
    assert adaptation.masked_batchnorm == "train" and adaptation.teacher_batchnorm == "batch"
    assert not adaptation.pseudo_per_image
    assert cfg.model.head_init == "mmcv" and cfg.train.head_norm_decay


@pytest.mark.parametrize("pair", ["gta2cs", "syn2cs"])
def test_omuda_trains_on_the_papers_batch_of_three_and_the_baselines_on_two(pair):
    configs = Path(__file__).resolve().parents[1] / "configs" / pair
    assert load_config(configs / "omuda.yaml").data.batch_size == 3
    for baseline in ("daformer.yaml", "mic.yaml", "source_only.yaml"):
        assert load_config(configs / baseline).data.batch_size == 2


def test_overrides_are_typed_and_nested():
    cfg = config_from_dict(
        {"train": {"iters": 10}},
        [
            "train.seed=3",
            "data.crop_size=[64,96]",
            "model.pretrained=null",
            "train.lr=1e-3",
            "adaptation.pseudo_ignore_top=2",
            "adaptation.pseudo_ignore_bottom=8",
        ],
    )
    assert cfg.train.iters == 10 and cfg.train.seed == 3
    assert cfg.data.crop_size == (64, 96)
    assert cfg.model.pretrained is None
    assert cfg.train.lr == pytest.approx(1e-3)
    assert parse_override("data.root=/tmp/x") == ("data.root", "/tmp/x")


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(OmudaError, match=r"train\.itres.*did you mean train\.iters.*valid keys"):
        config_from_dict({}, ["train.itres=5"])
    with pytest.raises(OmudaError, match="unknown config key 'trian'"):
        config_from_dict({"trian": {"iters": 5}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.iters=ten", "must be an integer"),
        ("train.compile=1", "true or false"),
        ("data.crop_size=[64]", "2 entries"),
        ("adaptation.masking=checkerboard", "must be one of none, block, cam"),
        ("train.iters=0", "at least 1"),
        ("train.iters", "KEY=VALUE"),
        ("data.crop_size=[128,128]", "cover the whole crop height"),
        ("adaptation.teacher_batchnorm=frozen", "must be one of batch, running"),
        ("adaptation.masked_batchnorm=frozen", "must be one of train, batch, running"),
        ("adaptation.classmix_classes=all", "must be one of batch, image"),
        ("adaptation.color_jitter_formulas=pil", "must be one of kornia, torchvision"),
        ("adaptation.mask_grid=floor", "must be one of round, ceil"),
        ("adaptation.source_loss_average=mean", "must be one of all, labelled"),
        ("model.head_init=xavier", "must be one of mmcv, pytorch"),
        ("adaptation.kd_samples=pixels", "must be one of cells, images"),
        ("adaptation.kd_reduction=max", "must be one of sum, mean"),
        ("adaptation.mix=cutmix", "must be one of classmix, camix, none"),
        ("adaptation.lookahead_restore=optimizer", "must be one of weights, all"),
        ("adaptation.lookahead_steps=-1", r"must lie in \[0, 64\]"),
        ("adaptation.camix_prior_size=[0,4]", "must lie in"),
        ("adaptation.camix_significance_start=1.5", "must lie in"),
    ],
)
def test_bad_values_are_rejected(override, message):
    with pytest.raises(OmudaError, match=message):
        config_from_dict({}, [override])


def test_round_trip_through_yaml(tmp_path):
    cfg = config_from_dict({"name": "x", "adaptation": {"masking": "cam"}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    assert load_config(path) == cfg


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(OmudaError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(OmudaError, match="not valid YAML"):
        load_config(bad)
    # YAML would silently keep the second `iters`; a config must not hide a typo like that.
    twice = tmp_path / "twice.yaml"
    twice.write_text("train:\n  iters: 5\n  lr: 0.1\n  iters: 50\n")
    with pytest.raises(OmudaError, match="line 4: key 'iters' appears twice"):
        load_config(twice)
    listed = tmp_path / "listed.yaml"
    listed.write_text("? [a, b]\n: 1\n")
    with pytest.raises(OmudaError, match="cannot be a mapping key"):
        load_config(listed)


def test_yaml_anchors_and_merge_keys_still_work(tmp_path):
    path = tmp_path / "merged.yaml"
    path.write_text(
        "data:\n  source: &gta {kind: gta, path: gta}\n  val:\n    <<: *gta\n    path: other\n"
    )
    cfg = load_config(path)
    assert cfg.data.val.kind == "gta" and cfg.data.val.path == "other"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path):
    load_config(path)


def test_fst_and_camix_need_what_they_change():
    with pytest.raises(OmudaError, match="lookahead_steps > 0.*self_training=true"):
        config_from_dict({}, ["adaptation.lookahead_steps=3", "adaptation.self_training=false"])
    with pytest.raises(OmudaError, match="camix_significance replaces"):
        config_from_dict({}, ["adaptation.mix=camix", "adaptation.class_decoupling=difficulty"])
    # the public code's loss (no significance mask) leaves CDM its mixed loss
    public = ["adaptation.mix=camix", "adaptation.camix_significance=false"]
    config_from_dict({}, [*public, "adaptation.class_decoupling=difficulty"])
