"""Samplers, each written once against the engine primitives."""

from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks
from distsmote.samplers.combine import SMOTEENN, SMOTETomek
from distsmote.samplers.smote import SMOTE

__all__ = ["SMOTE", "SMOTEENN", "SMOTETomek", "EditedNearestNeighbours", "TomekLinks"]
