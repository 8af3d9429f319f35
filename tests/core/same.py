"""A trace's final detections (boxes, labels, scores; masks and keypoints where the model has
those heads) against torchvision's ``model(images)`` output, exactly."""

import numpy as np


def assert_same(tr, out):
    fin = tr.final()
    assert len(fin) == len(out["boxes"]) > 0
    np.testing.assert_array_equal(np.array([d["box"] for d in fin], np.float32), out["boxes"].numpy())
    np.testing.assert_array_equal([d["label"] for d in fin], out["labels"].numpy())
    np.testing.assert_array_equal(np.array([d["score"] for d in fin], np.float32), out["scores"].numpy())
    if "masks" in out:
        for j in range(len(fin)):
            np.testing.assert_array_equal(tr.masks.full(j), out["masks"][j, 0].numpy())
        assert [d["mask_area"] for d in fin] == (out["masks"][:, 0] > 0.5).sum((1, 2)).tolist()
    if "keypoints" in out:
        np.testing.assert_array_equal(tr.keypoints.keypoints_image, out["keypoints"].numpy())
        np.testing.assert_array_equal(tr.keypoints.scores, out["keypoints_scores"].numpy())
        assert [d["keypoints"] for d in fin] == out["keypoints"].tolist()
