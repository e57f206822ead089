"""NeuroAI tracker: follows NeuroAI on arXiv and blogs and sends a weekly digest."""

__version__ = "0.1.0"
