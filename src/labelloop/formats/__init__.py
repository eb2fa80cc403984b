"""Annotation formats behind a registry: COCO, YOLO, Pascal VOC, CVAT XML 1.1, Label Studio,
and import-only VIA, LabelMe and instance-mask PNG folders."""

from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    WriteOptions,
    detect_format,
    get_format,
    list_formats,
    register_format,
)

__all__ = [
    "AnnotationFormat",
    "ReadOptions",
    "WriteOptions",
    "detect_format",
    "get_format",
    "list_formats",
    "register_format",
]
