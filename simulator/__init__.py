"""autosplit: split DNN inference between an edge accelerator and a cloud GPU."""

__version__ = "0.1.0"
