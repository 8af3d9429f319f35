"""Stage overlays: geometry checked against hand-computed cases, settings, and rendering."""

from dataclasses import replace

import numpy as np
import pytest

import core
from core.errors import LensError
from core.overlays import all_layers, layers_for
from core.overlays.layers import Boxes, Heatmap, Picture, Points
from core.overlays.rois import sampling
from core.render import render

from .conftest import noise_image


@pytest.fixture(scope="module")
def alex():
    """seed-alexnet on 150x250: resized x2 to 300x500, padded to 320x512, AlexNet grid 9x15."""
    model = core.load_model("seed-alexnet", weights="random:1", box_score_thresh=0.0)
    return core.trace(model, noise_image(150, 250, seed=2))


def test_frames_by_hand(alex):
    m = alex.meta
    assert (m.resized_size, m.batch_size, m.scale) == ((300, 500), (320, 512), (2.0, 2.0))
    f = alex.features["0"]
    assert f.data.shape[1:] == (9, 15) and f.stride == (35, 34) and f.valid == (9, 15)


def test_feature_cell_lands_on_its_image_area(alex):
    one_hot = np.zeros_like(alex.features["0"].data)
    one_hot[:, 2, 3] = 1.0
    tr = replace(alex, features={"0": replace(alex.features["0"], data=one_hot)})
    sl = layers_for(tr, "features", {"reduction": "max", "opacity": 1.0, "colormap": "grey"})
    hm = sl.layers[0]
    assert isinstance(hm, Heatmap) and hm.data.shape == (9, 15)
    # cell (row 2, col 3) is centred on (3*34, 2*35) in the model frame = (51, 35) in the photo,
    # half a stride each way: x 42.5..59.5, y 26.25..43.75
    x0, y0, x1, y1 = hm.rect
    cw, ch = (x1 - x0) / 15, (y1 - y0) / 9
    np.testing.assert_allclose([x0 + 3 * cw, y0 + 2 * ch, x0 + 4 * cw, y0 + 3 * ch], [42.5, 26.25, 59.5, 43.75])
    out = render(np.zeros((150, 250, 3), np.uint8), [sl])
    ys, xs = np.nonzero(out[..., 0] > 127)
    # pixels whose centres lie in the cell: x 42.5..59.5 -> 42..58, y 26.25..43.75 -> 26..43
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (42, 58, 26, 43)


def test_anchors_of_a_cell_are_centred_on_it(alex):
    sl = layers_for(alex, "anchors", {"cell": [2, 3]})
    cell = next(lay for lay in sl.layers if isinstance(lay, Points) and lay.name.endswith(".cell"))
    boxes = next(lay for lay in sl.layers if isinstance(lay, Boxes))
    np.testing.assert_allclose(cell.xy, [[51.0, 35.0]])
    assert len(boxes.xyxy) == 12  # 4 sizes x 3 ratios
    centres = (boxes.xyxy[:, :2] + boxes.xyxy[:, 2:]) / 2
    np.testing.assert_allclose(centres, np.repeat([[51.0, 35.0]], 12, 0), atol=0.5)
    # size 32 ratio 1 in the model frame is 32x32: 16x16 in the photo
    b = boxes.xyxy[4]
    np.testing.assert_allclose([b[2] - b[0], b[3] - b[1]], [16, 16])
    assert "9 x 15 x 12 = 1620" in sl.caption
    centres = next(lay for lay in sl.layers if isinstance(lay, Points) and lay.name.endswith(".centres"))
    assert len(centres.xy) == 9 * 15
    with pytest.raises(LensError, match="outside the 9x15 grid"):
        layers_for(alex, "anchors", {"cell": [9, 0]})


def test_default_anchor_cell_has_highest_objectness(alex):
    sl = layers_for(alex, "anchors")
    obj = alex.rpn[0].objectness.max(0)
    r, c = np.unravel_index(np.argmax(obj), obj.shape)
    assert f"cell ({r}, {c})" in sl.caption


def test_objectness_shares_the_feature_grid(alex):
    hm = layers_for(alex, "objectness").layers[0]
    fm = layers_for(alex, "features").layers[0]
    assert hm.rect == fm.rect and hm.data.shape == fm.data.shape
    assert 0.0 <= hm.data.min() and hm.data.max() <= 1.0 and (hm.vmin, hm.vmax) == (0.0, 1.0)
    one = layers_for(alex, "objectness", {"anchor": 5, "mode": "logit"}).layers[0]
    np.testing.assert_array_equal(one.data, alex.rpn[0].objectness[5])


def test_feature_reductions(alex):
    d = alex.features["0"].data
    for red, ref in (("mean", d.mean(0)), ("max", d.max(0)), ("l2", np.sqrt((d ** 2).sum(0)))):
        np.testing.assert_allclose(layers_for(alex, "features", {"reduction": red}).layers[0].data, ref, rtol=1e-5)
    ch = layers_for(alex, "features", {"reduction": "channel", "channel": 7}).layers[0].data
    np.testing.assert_array_equal(ch, d[7])
    with pytest.raises(LensError, match="out of range; this level has 256 channels"):
        layers_for(alex, "features", {"reduction": "channel", "channel": 256})


def test_proposals_top_n_and_faded_suppressed(alex):
    sl = layers_for(alex, "proposals", {"top_n": 7})
    assert len(sl.layers) == 1 and len(sl.layers[0].xyxy) == 7
    sl = layers_for(alex, "proposals", {"top_n": 7, "pre_nms": True})
    faded, kept = sl.layers
    assert len(faded.xyxy) > 0 and faded.dashed.all() and (faded.colours[:, 3] < kept.colours[:, 3].min()).all()


def test_roi_bins_and_sampling_points():
    bins, pts = sampling(np.array([8.0, 16.0, 64.0, 72.0]), 8.0, (7, 7), 2)
    assert bins.shape == (49, 4) and pts.shape == (7 * 7 * 4, 2)
    np.testing.assert_allclose(bins[0], [8, 16, 16, 24])
    np.testing.assert_allclose(bins[-1], [56, 64, 64, 72])
    np.testing.assert_allclose(pts[0], [10, 18])  # a quarter of a bin in from the corner


def test_rois_default_to_best_detection(alex):
    sl = layers_for(alex, "rois")
    d = alex.detections
    roi = int(d.proposal[d.keep[0]])
    sel = next(lay for lay in sl.layers if lay.name == "rois.selected")
    np.testing.assert_array_equal(sel.xyxy[0], alex.box_head.rois_image[roi])
    pts = next(lay for lay in sl.layers if lay.name == "rois.samples").xy
    x0, y0, x1, y1 = sel.xyxy[0]
    assert len(pts) == 4 * 4 * 1 and ((pts[:, 0] > x0) & (pts[:, 0] < x1)).all()


def test_detections_and_input(alex):
    sl = layers_for(alex, "detections", {"suppressed": True})
    faded, kept = sl.layers
    assert len(kept.xyxy) == len(alex.detections.keep)
    assert kept.labels[-1].startswith("class ")
    pic = layers_for(alex, "input").layers[0]
    assert isinstance(pic, Picture) and pic.rgb.shape == (320, 512, 3)
    assert pic.rect == (0.0, 0.0, 256.0, 160.0)


def test_bad_settings_are_clear(alex):
    with pytest.raises(LensError, match="features.reduction"):
        layers_for(alex, "features", {"reduction": "median"})
    with pytest.raises(LensError, match="no such level"):
        layers_for(alex, "features", {"level": "7"})
    with pytest.raises(LensError, match="unknown setting"):
        layers_for(alex, "proposals", {"topn": 3})


def test_render_keeps_photo_size_and_draws(alex):
    stages = all_layers(alex)
    img = alex.image
    out = render(img, stages)
    assert out.shape == img.shape and not np.array_equal(out, img)
    legend = render(img, stages, ["a line"])
    assert legend.shape[1] == img.shape[1] and legend.shape[0] > img.shape[0]
