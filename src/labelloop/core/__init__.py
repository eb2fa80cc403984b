"""Records and geometry shared by every domain: no database, no framework."""

from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.core.samples import Sample, TrainingData

__all__ = ["AnnotationRecord", "DatasetRecord", "ImageRecord", "Sample", "TrainingData"]
