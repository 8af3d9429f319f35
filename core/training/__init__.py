"""The training view: what ``torch.manual_seed(S); model.train(); model(images, targets)`` computes
for one image (``targets``), as numpy types the app and the overlays read (``types``)."""
