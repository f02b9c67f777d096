"""The windows of prodseg select and prodseg view, and where their mask previews come from."""
