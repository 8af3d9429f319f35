"""The app's state, Qt-free: model, image, params, trace and selection (``app_state``), the ground
truth side (``truth``), its events (``events``), and what is under the mouse (``probe``)."""
