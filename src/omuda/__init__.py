"""OMUDA: omni-level masking for unsupervised domain adaptation in semantic segmentation."""

import os

from omuda.limits import MAX_IMAGE_PIXELS

# OpenCV reads its decode limit once, when it is loaded: set it before anything imports
# cv2. omuda's readers check the same bound from the header first.
os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_IMAGE_PIXELS)

__version__ = "0.1.0"
