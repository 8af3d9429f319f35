"""Stage overlays: geometry checked against hand-computed cases, settings, and rendering."""

from dataclasses import replace

import numpy as np
import pytest

import core
from core.errors import LensError
from core.overlays import all_layers, layers_for
from core.overlays.layers import Boxes, Heatmap, Picture, Points
from core.overlays.render import render
from core.overlays.rois import sampling

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
    assert "15x9 cells (W x H) x 12 anchors = 1620" in sl.caption
    centres = next(lay for lay in sl.layers if isinstance(lay, Points) and lay.name.endswith(".centres"))
    assert len(centres.xy) == 9 * 15
    with pytest.raises(LensError, match="outside the 9x15 grid"):
        layers_for(alex, "anchors", {"cell": [9, 0]})


def test_default_anchor_cell_has_highest_objectness(alex):
    sl = layers_for(alex, "anchors")
    obj = alex.rpn[0].objectness.max(0)
    r, c = np.unravel_index(np.argmax(obj), obj.shape)
    assert f"cell (row {r}, col {c})" in sl.caption


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
    bins, pts = sampling(np.array([8.0, 16.0, 64.0, 72.0]), 1 / 8, (7, 7), 2)
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


# ---------------------------------------------------------------- RoIAlign: drawn where it samples
def _roi_align_check(model, tr, min_rois=1, only=None):
    """For RoIs inside their feature map: the drawn sampling points, bin by bin, average to what
    torchvision's roi_align reads from a feature map whose channels are its own x and y
    coordinates (bilinear interpolation of a linear field is exact), at the pool's own scale."""
    import torch
    from torchvision.ops import roi_align

    pool = model.module.roi_heads.box_roi_pool
    h = tr.box_head
    sy, sx = tr.meta.scale
    checked: dict = {}
    for roi in range(len(h.rois)) if only is None else only:
        lvl = int(h.roi_level[roi])
        if only is None and checked.get(lvl, 0) >= 2:
            continue
        level = h.pooled_levels[lvl]
        _, fh, fw = tr.features[level].data.shape
        scale = float(pool.scales[lvl])  # torchvision's, not the trace's
        x1, y1, x2, y2 = (h.rois[roi] * scale).tolist()
        if not (0 <= x1 and 0 <= y1 and max(x2, x1 + 1) < fw - 1 and max(y2, y1 + 1) < fh - 1):
            continue  # a border RoI: roi_align clamps there, the linear field would not be exact
        sl = layers_for(tr, "rois", {"roi": roi})
        pts = next(lay for lay in sl.layers if lay.name == "rois.samples").xy
        bins = next(lay for lay in sl.layers if lay.name == "rois.bins").xyxy
        f = np.zeros((1, 2, fh, fw), np.float32)
        f[0, 0] = np.arange(fw)[None, :]
        f[0, 1] = np.arange(fh)[:, None]
        out = roi_align(torch.from_numpy(f), torch.tensor([[0, *h.rois[roi].tolist()]], dtype=torch.float32),
                        output_size=h.output_size, spatial_scale=scale, sampling_ratio=pool.sampling_ratio,
                        aligned=False)[0].numpy()  # [2, ph, pw]
        ph, pw = h.output_size
        feat = pts * np.array([sx, sy], np.float32) * scale  # drawn points in the level's feature coordinates
        for i in range(ph):
            for j in range(pw):
                b = bins[i * pw + j] * np.array([sx, sy, sx, sy], np.float32) * scale
                inside = (feat[:, 0] > b[0]) & (feat[:, 0] < b[2]) & (feat[:, 1] > b[1]) & (feat[:, 1] < b[3])
                n = pool.sampling_ratio if pool.sampling_ratio > 0 else None
                if n:
                    assert inside.sum() == n * n
                np.testing.assert_allclose(feat[inside].mean(0), out[:, i, j], atol=2e-3)
        checked[lvl] = checked.get(lvl, 0) + 1
    assert sum(checked.values()) >= min_rois
    return checked


@pytest.mark.parametrize("name, size", [("seed-alexnet", (150, 250)), ("seed-walkthrough", (800, 800))])
def test_rois_are_drawn_where_roi_align_samples(name, size):
    model = core.load_model(name, weights="random:3", box_score_thresh=0.0)
    tr = core.trace(model, noise_image(*size, seed=6))
    assert tr.features["0"].stride[1] * model.module.roi_heads.box_roi_pool.scales[0] != 1  # 34 or 33 vs 1/32
    _roi_align_check(model, tr, min_rois=2)
    # a RoI smaller than a feature cell: roi_align widens it to one cell *at its scale* (32 px,
    # not the 33-35 px stride), so here the scale shows even in the model frame
    from dataclasses import replace

    h = tr.box_head
    rois = h.rois.copy()
    rois[0] = [120.0, 90.0, 131.0, 97.0]
    tiny = replace(tr, box_head=replace(h, rois=rois, rois_image=tr.meta.to_image(rois),
                                        roi_level=np.zeros_like(h.roi_level)))
    _roi_align_check(model, tiny, only=[0])


def test_rois_are_drawn_where_roi_align_samples_on_fpn_levels():
    # random proposals come in every size, so RoIAlign pools from several levels, each its own scale
    model = core.load_model("fasterrcnn_resnet50_fpn", weights="random:3", min_size=256, max_size=320,
                            box_score_thresh=0.0)
    tr = core.trace(model, noise_image(240, 300, seed=6))
    checked = _roi_align_check(model, tr, min_rois=3)
    assert len(checked) >= 2, checked


def test_roi_caption_says_when_scale_and_stride_disagree(alex):
    cap = layers_for(alex, "rois").caption
    assert "RoIAlign scale 1/32" in cap and "feature stride is 34x35 px" in cap
    demo = core.trace(core.load_model("demo", weights="random:1"), noise_image(200, 240))
    assert "RoIAlign scale 1/8" in layers_for(demo, "rois").caption
    assert "Note" not in layers_for(demo, "rois").caption  # stride 8 = 1/scale: nothing to say


# ---------------------------------------------------------------- captions, labels, pixels
def test_captions_go_to_the_legend_not_over_the_photo(alex):
    from core.overlays.layers import Text

    for sl in all_layers(alex):
        assert not any(isinstance(lay, Text) for lay in sl.layers), sl.stage
        assert sl.caption
    assert "overhangs the top and left" in layers_for(alex, "features").caption
    assert "overhangs the top and left" in layers_for(alex, "objectness").caption
    assert "500x300" in layers_for(alex, "input").caption  # sizes read W x H


def test_placement_keeps_labels_whole_inside_and_apart():
    from core.overlays.placement import place

    boxes = [[10, 0, 60, 40], [12, 2, 58, 38], [11, 1, 59, 39], [190, 90, 200, 100]]
    rects = place(boxes, [[40, 12]] * 4, (0, 0, 200, 100))
    assert not np.isnan(rects).any()
    assert (rects[:, 0] >= 0).all() and (rects[:, 1] >= 0).all() and (rects[:, 2] <= 200).all() \
        and (rects[:, 3] <= 100).all()
    for i in range(4):
        for j in range(i):
            a, b = rects[i], rects[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (i, j)
    # an optional (faded) label with no free spot is left out rather than covering another
    crowded = place([[0, 0, 10, 10]] * 8, [[200, 100]] * 8, (0, 0, 200, 100), optional=[False] + [True] * 7)
    assert not np.isnan(crowded[0]).any() and np.isnan(crowded[1:]).all()


def test_labels_stay_off_small_objects_and_a_stage_says_how_many_more():
    from core.overlays.layers import Boxes, StageLayers
    from core.overlays.placement import MAX_STAGE_LABELS, _hidden, place, stage_labels

    # a column of small objects 4 px apart, their labels 28 x 12: above one is on the next one up, so
    # each label goes beside its object, not on a neighbour
    boxes = np.array([[100, 20 + 24 * k, 120, 40 + 24 * k] for k in range(6)], np.float64)
    rects = place(boxes, [[28, 12]] * 6, (0, 0, 400, 200))
    for r in rects:
        assert _hidden(r[None, :2], 28, 12, boxes)[0] == 0.0, r  # whole objects stay visible
    # a large object: its label may go inside (it hides little of it)
    big = place([[0, 0, 400, 200]], [[28, 12]], (0, 0, 400, 200))
    assert not np.isnan(big).any()
    # a stage with more labels than it may show: its most important ones and "+N more"
    n = MAX_STAGE_LABELS + 7
    xy = np.array([[k * 10, 0, k * 10 + 8, 8] for k in range(n)], np.float32)
    cols = np.tile(np.array([[255, 0, 0, 255]], np.uint8), (n, 1))
    items = stage_labels(StageLayers("x", [Boxes("x.b", xy, cols, labels=[f"b{k}" for k in range(n)])], ""))
    texts = [t for _, t, _, _ in items]
    assert len(texts) == MAX_STAGE_LABELS + 1 and texts[-1] == "+7 more" and texts[0] == f"b{n - 1}"


def test_export_labels_are_whole_at_the_top_edge():
    from core.overlays.layers import StageLayers

    img = np.zeros((120, 200, 3), np.uint8)
    sl = StageLayers("detections", [Boxes("detections.kept", np.array([[20, 0, 120, 60]], np.float32),
                                          np.array([[255, 127, 14, 255]], np.uint8), width=2.0,
                                          labels=["rectangle 1.00"])])
    out = render(img, [sl])
    # the label's filled background lies wholly inside the image, inside the box's top
    ys, xs = np.nonzero((out == [255, 127, 14]).all(2))
    assert ys.min() == 0 and ys.max() > 8 and xs.min() >= 19


def test_box_edges_straddle_the_pixel_boundary_as_in_the_app():
    """A box edge at x = 40 lies between pixels 39 and 40 (continuous coordinates, as the app and
    the heatmaps have them): its drawn line is centred there, not on pixel 40's centre."""
    from core.overlays.layers import StageLayers

    img = np.zeros((100, 100, 3), np.uint8)
    sl = StageLayers("x", [Boxes("x", np.array([[40, 30, 80, 70]], np.float32),
                                 np.array([[255, 255, 255, 255]], np.uint8), width=2.0)])
    out = render(img, [sl]).astype(float)[..., 0]
    row = out[50, 30:50]  # across the left edge
    centre = (row * (np.arange(30, 50) + 0.5)).sum() / row.sum()
    assert abs(centre - 40.0) < 0.15, centre
    col = out[20:40, 60]  # across the top edge
    centre = (col * (np.arange(20, 40) + 0.5)).sum() / col.sum()
    assert abs(centre - 30.0) < 0.15, centre


def test_faded_labels_are_legible(alex):
    """Suppressed boxes' labels: text in their colour lightened on a dark background (contrast),
    not the box's faint colour on a faded fill."""
    from core.overlays.placement import FADED_BACKGROUND, faded_text

    sl = layers_for(alex, "detections", {"suppressed": True})
    faded = sl.layers[0]
    assert faded.labels and (faded.colours[:, 3] < 200).all()

    def lum(c):
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]

    for c in faded.colours[:5]:
        assert lum(faded_text(c)) - lum(FADED_BACKGROUND) > 100


# ---------------------------------------------------------------- the registry, lean traces
def test_a_new_stage_is_one_registry_entry(alex):
    import types
    from dataclasses import replace

    from core.overlays import REGISTRY, Stage, available, register
    from core.overlays.export import parse_overlays
    from core.overlays.layers import StageLayers
    from core.overlays.settings import defaults

    mod = types.SimpleNamespace(layers=lambda tr, s: StageLayers("sketch", [], f"sketch at {s['opacity']}"))
    register(Stage("sketch", "Sketch", mod, {"opacity": 0.5, "show": "all"}, group="heads",
                   available=lambda tr: tr.keypoints is not None, choices={"show": ("all", "some")}))
    try:
        assert "sketch" not in available(alex) and "sketch" in available(None)
        assert defaults()["sketch"] == {"opacity": 0.5, "show": "all"} and "sketch" in parse_overlays("all")
        assert "sketch" not in [sl.stage for sl in all_layers(alex)]  # this trace has none: skipped
        with_it = replace(alex, keypoints=object())
        assert [sl.stage for sl in all_layers(with_it, ["detections", "sketch"])] == ["detections", "sketch"]
        with pytest.raises(LensError, match="sketch.opacity"):
            layers_for(with_it, "sketch", {"opacity": 2})
        with pytest.raises(LensError, match="sketch.show: use one of all, some"):
            layers_for(with_it, "sketch", {"show": "none"})
    finally:
        del REGISTRY["sketch"]
    assert [st.key for st in REGISTRY.values() if st.key] == [1, 2, 3, 4, 5, 6, 7]
    assert [n for n, st in REGISTRY.items() if st.key] == list(core.STAGES)


def test_a_lean_trace_names_the_part_a_stage_needs(alex):
    from dataclasses import replace

    from core.tracing.parts import Missing, fill, lean

    thin, kept = lean(replace(alex, _state=None), 5)
    assert layers_for(thin, "detections").layers  # light stages draw without any part
    with pytest.raises(Missing) as m:
        layers_for(thin, "features")
    assert (m.value.source, m.value.path) == (5, ("features", "0", "data"))
    with pytest.raises(Missing) as m:
        layers_for(thin, "rois", {"roi": 2})
    assert m.value.path == ("box_head", "pooled", 2)  # one RoI's row, not all of them
    full = fill(thin, {(5, ("features", "0", "data")): kept[("features", "0", "data")],
                       (5, ("box_head", "pooled", 2)): alex.box_head.pooled[2]})
    np.testing.assert_array_equal(layers_for(full, "features").layers[0].data,
                                  layers_for(alex, "features").layers[0].data)
    np.testing.assert_array_equal(layers_for(full, "rois", {"roi": 2}).layers[-4].data,
                                  layers_for(alex, "rois", {"roi": 2}).layers[-4].data)


def test_a_withheld_array_never_answers_a_comparison_or_sum_quietly():
    from core.tracing.parts import Missing, Withheld

    w = Withheld(("training", "rpn", "matched"), (10,), "int64", 3)
    for read in (lambda: w == 2, lambda: w != 2, lambda: w > 0, lambda: w + 1, lambda: 1 - w, lambda: ~w,
                 lambda: bool(w), lambda: list(w), lambda: w.sum()):
        with pytest.raises(Missing) as m:
            read()
        assert (m.value.source, m.value.path) == (3, ("training", "rpn", "matched"))
    assert len({w}) == 1  # still hashable (a cache key)


def test_sizes_read_width_first_and_say_so(alex):
    """Image sizes read W x H everywhere (and say it); tensors as their shapes [C, H, W]."""
    from core.tracing.summary import pipeline_rows

    rows = {r[0]: r for r in pipeline_rows(alex)}
    assert rows["input"][2] == "250x150 -> 500x300 (W x H)" and rows["input"][1] == "3 x 320 x 512"
    a = alex.anchors[0]
    assert rows[f"anchors {a.name}"][2] == f"15x9 (W x H) x {a.per_cell}" and a.grid == (9, 15)
    for stage in ("input", "features", "anchors", "objectness", "rois"):
        cap = layers_for(alex, stage).caption
        assert "(W x H)" in cap, cap


def test_a_fading_heatmap_leaves_the_photo_where_its_value_is_low():
    """The loss map is sparse: where a cell pays nothing the photo shows, where it pays most the colour
    shows at the stage's opacity (window and export share the alpha ramp)."""
    from core.colormaps import lut
    from core.overlays.layers import Heatmap, StageLayers
    from core.overlays.render import render

    img = np.full((40, 40, 3), 200, np.uint8)
    data = np.array([[0.0, 1.0]], np.float32)
    out = render(img, [StageLayers("loss", [Heatmap("h", data, (0, 0, 40, 40), "inferno", 0.7, 0.0, 1.0, fade=True)],
                                   "")])
    assert (out[20, 5] == 200).all()  # value 0: the photo
    top = lut("inferno")[255].astype(float)
    np.testing.assert_allclose(out[20, 35], np.round(200 * 0.3 + top * 0.7), atol=1)
    plain = render(img, [StageLayers("f", [Heatmap("h", data, (0, 0, 40, 40), "inferno", 0.7, 0.0, 1.0)], "")])
    assert not (plain[20, 5] == 200).all()  # an ordinary heatmap covers the photo everywhere
