"""Why was it missed, and what would fix it: verdicts per object (``diagnose``, vocabulary in
``verdicts``), COCO matching and TIDE (``matching``), ``rcnn-lens analyze`` over a dataset (``analyze``,
its files, ranks, summary and chart) and the analysis folder as the app lists it (``browse``)."""
