"""Fraud and abuse detectors, shared by the online gateway, offline replay and training."""
