"""Student-facing helpers of the course (datasets, loaders, toy problems); no solutions."""
