"""German question answering with verifiable citations over a folder of news articles."""

__version__ = "0.1.0"
