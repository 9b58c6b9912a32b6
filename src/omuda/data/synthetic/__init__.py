"""The embedded synthetic benchmark: procedural street scenes in the 19-class label space.

`render_scene` draws one street frame with its label; `generate_benchmark` writes a
GTA5-like source domain, a Cityscapes-like target domain and a SYNTHIA-like source domain
in the real datasets' file layouts, with raw label ids, so that the real loaders and
`omuda prepare` read them unchanged.

Scene model (the same in every domain). A pinhole camera at height h above a flat ground
looks along a straight street; every element is placed in metres and projected, so sizes
shrink with depth exactly as in a real frame (a ground point at depth Z lies f*h/Z pixels
below the horizon). Back to front: sky (blue gradient, on top); ground strips on each side
(road in the middle with lane markings and sometimes tram rails, kerbed sidewalks, grass or
earth terrain strips); a row of building facades with window grids or stands of trees
along each side and sometimes a block across the far end; walls, fences and hedges in
front of them; then, sorted by depth, trees, street lights, poles carrying traffic lights
(dark box with one lit dot) and traffic signs (disc, triangle, diamond or plate), cars
(body, darker cabin windows, wheels, side face in perspective), trucks (cab and cargo box),
buses (tall box with a window band), trams on the rails, persons (head, torso, arms, legs),
riders on bicycles or motorcycles, and parked two-wheelers. Cityscapes-like frames often
show the ego vehicle's bonnet at the bottom (ignore). SYNTHIA-like frames look from a
higher, more downward viewpoint and never contain terrain, truck or train.

Domain shift. Every component below is a continuous, monotone function of `shift` (s) and
vanishes at s = 0, where both domains are drawn from one shared appearance and rendering
model. Source domains (gta, synthia) are rendered "synthetic", the target (cityscapes)
"real":

- saturation: source x exp(0.20 s), target x exp(-0.35 s);
- contrast about the mean grey: source x exp(0.12 s), target x exp(-0.22 s);
- brightness and white balance: source brighter and warm (red gain exp(0.05 s), blue gain
  exp(-0.06 s)), target darker and cool, overcast (red exp(-0.04 s), blue exp(0.05 s));
- sharpness: source unsharp-masked with amount 0.4 (1 - exp(-s)), target Gaussian blur with
  sigma 0.2 s pixels (at 256 px width, scaled with the width);
- sensor noise: target Gaussian noise with std 0.003 + 0.005 s (of full range), source 0.003;
- vignetting: target corners darkened by min(0.6, 0.1 s);
- surface texture: per-surface grain amplitude x exp(-0.6 s) in the source (flat, clean
  surfaces) and x exp(0.4 s) in the target (worn asphalt, dirty facades, leafy trees);
- object appearance: each object colour and facade or window style comes from the domain's
  own palette with probability 1 - exp(-1.2 s), else from the shared one (source palettes
  are vivid and wide: red, yellow, lime cars, pastel and terracotta facades, yellow lane
  lines; target palettes are muted: grey, silver, black cars, concrete and glass facades);
  sky, road and sidewalk base colours move from the shared colour towards the domain's by
  1 - exp(-s). Sky stays blue-ish, vegetation green and road grey in every domain: the
  cues that hold in every real street are never changed;
- class frequencies: each rate is the shared base rate times exp(k s) with a per-domain k,
  e.g. the target has more cars, persons and bicycles per frame, the source more
  vegetation, terrain and trucks;
- local ambiguity: with probability min(0.9, 0.45 s) a target frame paints its locally
  alike classes with one look (sidewalk in the road's asphalt, terrain grassy like the
  vegetation, walls in the facades' colours, trucks in bus paint), so that only context
  (position, shape, neighbours) tells them apart; source frames keep their clean cues.
  This is the situation masked image consistency is meant for (MIC's premise). Blur and
  noise, which even a target-trained network cannot see through, are kept small, and there
  is no compression.

Frames are 640x352 (gta), 512x256 (cityscapes) and 640x380 (synthia), the real datasets'
aspect ratios; objects are sized and placed so that thin and small classes (poles, lights,
signs, two-wheelers) span several pixels at the training scales of the synthetic configs.

Determinism: image i (0-based) of split d is drawn from
`np.random.default_rng([seed, d, i])` only (d = 0 gta, 1 cityscapes train, 2 cityscapes
val, 3 synthia), so the output bytes depend on (seed, shift, counts), never on `workers`.

Modules, in the order a frame is made:

- `camera`: the pinhole camera and its per-domain viewpoint;
- `layout`: the street's lateral layout, sky, ground, facades and the sides' walls,
  fences and hedges;
- `sizes`: every object dimension in metres;
- `roadside`, `vehicles`, `people`: the object drawers; `placement`: how many objects of
  each kind a frame has and where they stand;
- `appearance`: the domain-shift parameters above (`domain_style`, `RATE_TABLE`), object
  colours (`Look`, from the tables in `palettes`) and the finishing pass (`finish`);
- `canvas`: the drawing surface (image, label and grain painted together) and class ids;
- `scene`: `render_scene`, the frame in order; `writer`: `generate_benchmark`, the file
  layouts, raw label ids and the README, and `ambiguous_target_frames`, which target
  frames were drawn with the locally ambiguous look.
"""

from omuda.data.synthetic.appearance import DEFAULT_SHIFT, DOMAINS, SOURCE_DOMAINS
from omuda.data.synthetic.canvas import SYNTHIA_ABSENT_CLASSES
from omuda.data.synthetic.scene import render_scene
from omuda.data.synthetic.writer import CITIES, FRAME_SIZES, generate_benchmark

__all__ = [
    "CITIES",
    "DEFAULT_SHIFT",
    "DOMAINS",
    "FRAME_SIZES",
    "SOURCE_DOMAINS",
    "SYNTHIA_ABSENT_CLASSES",
    "generate_benchmark",
    "render_scene",
]
