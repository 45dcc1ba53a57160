"""replyrl: post-train language models to write engaging, diverse, on-topic replies."""

__version__ = "0.1.0"
