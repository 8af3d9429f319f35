"""The command line: ``rcnn-lens trace|export|analyze|models|download`` (``main``), their shared
options (``options``) and each command's parser and run (``export``, ``analyze``)."""
