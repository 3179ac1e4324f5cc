"""Samplers, each written once against the engine primitives."""

from distsmote.samplers.adasyn import ADASYN
from distsmote.samplers.borderline import BorderlineSMOTE
from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks
from distsmote.samplers.combine import SMOTEENN, SMOTETomek
from distsmote.samplers.smote import SMOTE
from distsmote.samplers.smoten import SMOTEN
from distsmote.samplers.smotenc import SMOTENC

__all__ = ["ADASYN", "BorderlineSMOTE", "SMOTE", "SMOTEN", "SMOTENC", "SMOTEENN", "SMOTETomek", "EditedNearestNeighbours", "TomekLinks"]
