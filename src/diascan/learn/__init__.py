"""Learning from the scanner's labels (Qt-free): gather labelled stamps from sessions, fine-tune a
model package on them (:mod:`diascan.learn.job`), and the "uncertain first" labelling order.

Importing this package does not import torch; a training job imports it when it runs.
"""
