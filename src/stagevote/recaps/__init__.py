"""Recap pages: a static page per closed event, rendered by itself at close, stored in a folder or on S3."""
