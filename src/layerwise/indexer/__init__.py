"""Reading inputs, splitting passages and encoding them: one pass -> every layer pooled."""
