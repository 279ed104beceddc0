"""FER2013 and datasets laid out like it: sources, decode cache, splits, tf.data pipelines.

Import from the submodules: ``loading`` (a path to arrays and splits), ``sources`` (folder and
CSV readers), ``pipeline`` (tf.data), ``augment`` / ``augment_ops`` (augmentation), ``balance``
(class weights) and ``inspect`` (the duplicate report). This package itself imports nothing
heavy, so the command-line tools start at once.
"""
