"""Nearest-neighbour search: FAISS index build, shipping and exact re-ranking."""

from distsmote.neighbors.config import KnnConfig

__all__ = ["KnnConfig"]
