"""OMUDA: omni-level masking for unsupervised domain adaptation in semantic segmentation."""

__version__ = "0.1.0"
