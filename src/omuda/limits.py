"""Bounds on what the tool reads, so that no small input can cost unbounded memory or time.

Images are refused from their header when they exceed these bounds, before any decoding;
config files and YAML values are refused before they are turned into Python objects.
"""

# The largest image: 8192 pixels a side (64 megapixels), no side more than 16 times the
# other (a 4000x1 image has no usable keep-ratio resize).
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
MAX_ASPECT_RATIO = 16
# No image within the limit needs more bytes: 16-bit RGB stored uncompressed is 6 a pixel.
MAX_IMAGE_FILE_BYTES = 8 * MAX_IMAGE_PIXELS

# A config lists what differs from the defaults: a few hundred values at most.
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_VALUES = 10_000  # counted with anchors expanded, as Python would build them
MAX_YAML_DEPTH = 32
