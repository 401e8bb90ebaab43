"""Simulated demo data: rendering primitives (:mod:`.sources`) and the demo data set."""

from diascan.demo.cache import cached_demo
from diascan.demo.generate import DEMO_FILES, DEMO_VERSION, generate_demo

__all__ = ["DEMO_FILES", "DEMO_VERSION", "cached_demo", "generate_demo"]
