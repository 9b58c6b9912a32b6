import json
from pathlib import Path

import pytest

from omuda.engine.ablation import TABLES, _expand, run_tables, summarize_table
from omuda.errors import OmudaError

REPO = Path(__file__).resolve().parents[1]


def _fake_run(root: Path, table: str, slug: str, seed: int, miou: float) -> None:
    folder = root / table / slug / f"seed{seed}"
    folder.mkdir(parents=True)
    iou = [miou] * 19
    iou[6] = None  # an absent class
    (folder / "eval.json").write_text(
        json.dumps({"seconds": 120.0, "eval": {"miou": miou, "iou": iou}})
    )


@pytest.fixture
def fake_training(tmp_path, monkeypatch) -> list[str]:
    """Each training the ablation starts writes its resolved config.yaml and ends at once
    with mIoU 0.3 in its eval.json; the work dirs started, relative to tmp_path, are
    appended to the list returned."""
    import omuda.engine.ablation as ablation
    from omuda.config import load_config, save_config

    launched: list[str] = []

    def fake_train(command, stdout, stderr, check):
        position = command.index("--work-dir")
        work_dir = Path(command[position + 1])
        launched.append(work_dir.relative_to(tmp_path).as_posix())
        overrides = [item for item in command[position + 2 :] if item != "--resume"]
        save_config(load_config(command[position - 1], overrides), work_dir / "config.yaml")
        result = {"seconds": 60.0, "eval": {"miou": 0.3, "iou": [0.3] * 19}}
        (work_dir / "eval.json").write_text(json.dumps(result))
        return type("Finished", (), {"returncode": 0})()

    monkeypatch.setattr(ablation.subprocess, "run", fake_train)
    return launched


def key_of(config: str, *overrides: str) -> str:
    """The ablation's experiment key of a synthetic config with `overrides`."""
    from omuda.config import config_to_dict, load_config
    from omuda.engine.ablation import _experiment_key

    path = REPO / "configs" / "synthetic" / config
    return _experiment_key(config_to_dict(load_config(path, list(overrides))))


def test_summary_mean_std_and_single_seed(tmp_path):
    _fake_run(tmp_path, "table4", "baseline__daformer", 0, 0.30)
    _fake_run(tmp_path, "table4", "baseline__daformer", 1, 0.34)
    _fake_run(tmp_path, "table4", "cdm", 0, 0.25)
    summary = summarize_table("table4", tmp_path)
    assert "| baseline (DAFormer) | 32.0 ± 2.8 | 2 | 0: 30.0, 1: 34.0 | 2.0 |" in summary
    assert "| +CDM | 25.0 (one seed) | 1 |" in summary
    assert "| traffic light | - | - |" in summary  # absent class shown as '-'


def test_rows_expand_to_valid_configs():
    config_dir = REPO / "configs" / "synthetic"
    for rows in TABLES.values():
        for row in rows:
            config, overrides = _expand(row, config_dir)
            assert config.is_file()
    row = next(r for r in TABLES["table6"] if r.overrides == ("cam_scale=2",))
    assert _expand(row, config_dir)[1] == [
        "adaptation.cam_fine_block=8",
        "adaptation.cam_coarse_block=16",
    ]


def test_override_typo_fails_before_any_run(tmp_path):
    with pytest.raises(OmudaError, match="did you mean train.iters"):
        run_tables(["cdm"], REPO / "configs" / "synthetic", [0], tmp_path, ["train.itres=2"])
    assert not (tmp_path / "cdm").exists()


def test_rows_shared_between_tables_run_once(tmp_path, fake_training):
    launched = fake_training
    configs = REPO / "configs" / "synthetic"
    summaries = run_tables(["methods", "table4", "cdm"], configs, [0], tmp_path, [])
    # Table IV's baseline is the methods table's DAFormer, its last row and the CDM row of
    # the default reading are the full OMUDA row: 8 + 3 + 3 distinct experiments.
    assert len(launched) == 14, launched
    linked = tmp_path / "table4" / "all__omuda" / "seed0"
    assert linked.is_symlink() and linked.resolve() == (tmp_path / "methods/omuda/seed0").resolve()
    assert (tmp_path / "table4/baseline__daformer/seed0").is_symlink()
    assert "| all (OMUDA) | 30.0 (one seed) |" in summaries["table4"]
    # Nothing left to do on a second call.
    launched.clear()
    run_tables(["methods", "table4", "cdm"], configs, [0], tmp_path, [])
    assert launched == []


def test_a_row_finished_by_an_earlier_call_is_linked_not_run_again(tmp_path, fake_training):
    launched = fake_training
    configs = REPO / "configs" / "synthetic"
    # Run with 1 thread (many in parallel); the config's own count is 2.
    run_tables(["methods"], configs, [0], tmp_path, ["train.iters=10"], parallel=64, only=["OMUDA"])
    assert "threads: 1\n" in (tmp_path / "methods/omuda/seed0/config.yaml").read_text()
    launched.clear()
    run_tables(["table5"], configs, [0], tmp_path, ["train.iters=10"])
    # Table V's CAM row is the OMUDA run of the first call, at another thread count.
    assert sorted(launched) == [f"table5/{row}/seed0" for row in ("fixed_ratio", "rcs", "uniform")]
    linked = tmp_path / "table5/cam/seed0"
    assert linked.is_symlink() and linked.resolve() == (tmp_path / "methods/omuda/seed0").resolve()
    # With another budget the CAM row is another experiment, and runs.
    launched.clear()
    run_tables(["table6"], configs, [0], tmp_path, ["train.iters=20"], only=["CAM"])
    assert launched == ["table6/cam/seed0"]


def test_links_survive_reordering_and_a_deleted_target(tmp_path, monkeypatch):
    import shutil

    import omuda.engine.ablation as ablation

    launched = []

    def failing_train(command, stdout, stderr, check):
        launched.append(Path(command[command.index("--work-dir") + 1]))
        return type("Finished", (), {"returncode": 1})()

    monkeypatch.setattr(ablation.subprocess, "run", failing_train)
    configs = REPO / "configs" / "synthetic"
    with pytest.raises(OmudaError, match="failed"):
        ablation.run_tables(["methods", "table4"], configs, [0], tmp_path, [])
    # Table IV first: its baseline folder is a link to methods/daformer, queued once only.
    launched.clear()
    with pytest.raises(OmudaError, match="failed"):
        ablation.run_tables(["table4", "methods"], configs, [0], tmp_path, [])
    resolved = [path.resolve() for path in launched]
    assert len(resolved) == len(set(resolved)) == 11  # 8 methods + CAM, FDM, CDM rows
    # The link's target deleted to run it again: the link is renewed, no error.
    shutil.rmtree(tmp_path / "methods/omuda/seed0")
    launched.clear()
    with pytest.raises(OmudaError, match="failed"):
        ablation.run_tables(["table4"], configs, [0], tmp_path, [])
    assert (tmp_path / "table4/all__omuda/seed0").is_dir()


def test_settings_of_a_switched_off_mechanism_do_not_make_a_new_experiment():
    # FDM's readings belong to FDM: with FD they change nothing ...
    assert key_of("daformer.yaml") == key_of(
        "daformer.yaml", "adaptation.kd_samples=images", "adaptation.kd_reduction=sum"
    )
    # ... with FDM each is its own experiment, and with image rows the cell budget is unused.
    assert key_of("omuda.yaml") != key_of("omuda.yaml", "adaptation.kd_samples=images")
    assert key_of("omuda.yaml") != key_of("omuda.yaml", "adaptation.kd_reduction=mean")
    images = ("adaptation.kd_samples=images",)
    assert key_of("omuda.yaml", *images) == key_of(
        "omuda.yaml", *images, "adaptation.kd_max_cells=7"
    )
    assert key_of("omuda.yaml") != key_of("omuda.yaml", "adaptation.kd_max_cells=7")


def test_fst_and_camix_settings_belong_to_their_mechanisms():
    assert key_of("daformer.yaml") == key_of(
        "daformer.yaml", "adaptation.lookahead_restore=all", "adaptation.camix_warmup_iters=5"
    )
    assert key_of("daformer_fst.yaml") != key_of(
        "daformer_fst.yaml", "adaptation.lookahead_restore=all"
    )
    camix = "daformer_camix.yaml"
    assert key_of(camix) != key_of(camix, "adaptation.camix_warmup_iters=5")
    public_code = ("adaptation.camix_significance=false",)
    assert key_of(camix) != key_of(camix, *public_code)
    assert key_of(camix, *public_code) == key_of(
        camix, *public_code, "adaptation.camix_significance_rampup_iters=7"
    )


def test_only_runs_the_named_rows(tmp_path, fake_training):
    launched = fake_training
    configs = REPO / "configs" / "synthetic"
    run_tables(["fdm"], configs, [0, 1], tmp_path, [], only=["images, sum", "cells__mean"])
    assert sorted(launched) == [
        "fdm/cells__mean/seed0", "fdm/cells__mean/seed1",
        "fdm/images__sum/seed0", "fdm/images__sum/seed1",
    ]  # fmt: skip
    with pytest.raises(OmudaError, match="--only 'bogus' names no row of fdm"):
        run_tables(["fdm"], configs, [0], tmp_path, [], only=["bogus"])
