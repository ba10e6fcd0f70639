"""`make bench`: every benchmark beside its raw baseline, measured in the same run."""
