"""Scoring: binarisations, Jaccard and the DAVIS measures, per-object scores, score files, the DAVIS-2017 export."""
