"""One settings layer: prefixed environment variables with one unknown-key policy (refuse)
(``env``), one duration grammar (``durations``) and one time-zone check (``zones``)."""
