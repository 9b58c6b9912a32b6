"""Object dimensions in metres: the one place to change how large the scene's objects are.

A (low, high) range is drawn uniformly once per object; a single number is fixed. The
drawers (roadside, vehicles, people) place each object's details (wheels, windows, lamps,
limbs) at metre offsets chosen for these ranges: persons and riders are drawn in the
proportions of a 1.75 m body and scaled to their height, the other objects are not, so a
range moved far from its value here needs a look at its drawer too. Where objects stand
(depth ranges, kerb offsets) is set in `placement`, the street's own widths in `layout`,
and how often each object appears in `appearance.RATE_TABLE`.
"""

from __future__ import annotations

Range = tuple[float, float]

# Trees, poles and what they carry
TREE_TRUNK_HEIGHT: Range = (1.8, 4.0)
TREE_TRUNK_WIDTH: Range = (0.2, 0.4)
TREE_CROWN_RADIUS: Range = (1.4, 3.5)
POLE_WIDTH = 0.18  # traffic-light poles
POLE_ARM_THICKNESS = 0.14
MIN_POLE_PIXELS = 1.1  # thin poles far away are widened to keep this many pixels
STREETLIGHT_HEIGHT: Range = (6.0, 9.0)
STREETLIGHT_POLE_WIDTH = 0.2
STREETLIGHT_REACH: Range = (1.0, 2.5)  # arm length towards the road
TRAFFIC_LIGHT_POLE_HEIGHT: Range = (3.2, 6.5)
TRAFFIC_LIGHT_ARM_ABOVE = 4.5  # a taller pole hangs its light over the road from an arm
TRAFFIC_LIGHT_ARM_REACH: Range = (2.0, 5.0)
TRAFFIC_SIGN_POLE_HEIGHT: Range = (2.0, 2.8)
TRAFFIC_SIGN_POLE_WIDTH = 0.1
TRAFFIC_SIGN_SIZE: Range = (0.77, 1.19)  # larger than real ones: a few pixels at 384 px
TRAFFIC_LIGHT_BOX_HEIGHT = 1.33
TRAFFIC_LIGHT_BOX_HALF_WIDTH = 0.252

# Vehicles
CAR_WIDTH: Range = (1.65, 1.95)
CAR_HEIGHT: Range = (1.35, 1.6)
CAR_LENGTH: Range = (3.9, 4.8)
TRUCK_WIDTH: Range = (2.3, 2.55)
TRUCK_BOX_LENGTH: Range = (5.5, 9.0)
TRUCK_BOX_HEIGHT: Range = (3.2, 3.9)  # top of the cargo box above the ground
BUS_WIDTH = 2.55
BUS_LENGTH: Range = (11.0, 14.0)
BUS_HEIGHT: Range = (3.0, 3.4)
TRAM_WIDTH = 2.65
TRAM_LENGTH: Range = (25.0, 35.0)
TRAM_HEIGHT: Range = (3.4, 3.7)

# People and two-wheelers
PERSON_HEIGHT: Range = (1.55, 1.95)
RIDER_HEIGHT: Range = (1.6, 1.9)
BICYCLE_WHEEL_RADIUS = 0.34
BICYCLE_HALF_WHEELBASE = 0.55  # hub distance from the frame's centre
MOTORCYCLE_WHEEL_RADIUS = 0.32
MOTORCYCLE_HALF_WHEELBASE = 0.7
