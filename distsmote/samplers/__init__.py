"""Samplers, each written once against the engine primitives."""

from distsmote.samplers.adasyn import ADASYN
from distsmote.samplers.borderline import BorderlineSMOTE
from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks
from distsmote.samplers.combine import SMOTEENN, SMOTETomek
from distsmote.samplers.smote import SMOTE

__all__ = ["ADASYN", "BorderlineSMOTE", "SMOTE", "SMOTEENN", "SMOTETomek", "EditedNearestNeighbours", "TomekLinks"]
