import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random image: structure for random-weight models to respond to."""
    import cv2

    r = np.random.default_rng(seed)
    small = r.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
