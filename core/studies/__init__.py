"""Studies: what owns a run folder's layout and combines learning with evaluation."""
