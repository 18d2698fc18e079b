"""Built-in trackers, registered through the ``rlm`` entry point group like third-party ones."""
