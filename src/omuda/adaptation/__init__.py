"""Self-training mechanisms as pure tensor functions: teacher, pseudo-labels, mix, masks, losses."""
