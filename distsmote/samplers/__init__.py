"""Samplers, each written once against the engine primitives."""

from distsmote.samplers.smote import SMOTE

__all__ = ["SMOTE"]
