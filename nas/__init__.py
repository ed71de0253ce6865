"""PertNAS toolkit: neural architecture search with discrete architectural perturbations."""

__version__ = "0.2.0"
