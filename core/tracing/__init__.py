"""The trace: ``GeneralizedRCNN.forward`` called stage by stage with the model's own submodules
(``runner``), the frozen numpy types it yields (``types``), the split proposal filters, the Mask and
Keypoint heads, image files, what a trace withholds until asked (``parts``) and the trace table."""
