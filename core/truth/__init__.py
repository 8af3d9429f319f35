"""Ground truth: annotated boxes in original pixels with the model's class indices.

Readers (``coco``, ``voc``, ``yolo``) turn an annotation file or folder into ``Truth`` objects per
image; names map onto the model's classes by name. Annotation files are untrusted input: JSON is
size-capped, XML goes through defusedxml (no DTD, no entities), YAML through ``yaml.safe_load``.

    from core.truth.sources import open_annotations   # COCO json, VOC xml/folder, YOLO txt/folder
    from core.truth.beside import find_for_image
    ann = open_annotations("instances_val2017.json")
    truth = ann.for_image("000000139.jpg", (426, 640), model.class_names)   # Truth | None
    truth = find_for_image("scene_1.png", (510, 547), model.class_names)    # looks beside the image

Modules: ``types`` (Truth), ``common`` (what the readers share: the Annotations base, box checks,
names onto classes), ``coco``/``voc``/``yolo`` (the readers), ``sources`` (open a file or folder,
format detected, cached), ``beside`` (an image's own annotation file), ``lookup`` (a command-line
run's truth, checked before the model loads).

``Truth`` (``types``): one image's objects. ``boxes`` [N, 4] float32 xyxy in original pixels, ``names`` the
annotated class name of each, ``labels`` [N] int64 the model's class index (-1 where the model has
no class of that name: kept as truth without a label), ``difficult`` [N] bool (VOC's flag; False
elsewhere), ``crowd`` [N] bool (COCO's ``iscrowd``; False elsewhere), ``source`` the annotation
file it came from.

Boxes (see ``common.check_boxes``): a box may overhang the image by at most ``TOLERANCE`` (1 px:
annotation tools round, VOC counts pixels from 1) and is then clipped to it; a box further outside,
empty or not finite is an error naming the file and the object. Coordinates: COCO ``[x, y, w, h]``
as is; VOC ``xmin - 1, ymin - 1, xmax, ymax`` (1-based pixel indices, as detectron2 reads them);
YOLO normalized ``cx cy w h`` times the image size.
"""
