#!/usr/bin/env python3
"""A small GTK 3 window that offers one file as an XDND drag source, for the drop E2E test.

    drag_source.py FILE X Y WIDTH HEIGHT

Shows an undecorated window at (X, Y) of WIDTH x HEIGHT whose whole area is a drag source
offering FILE as a `text/uri-list` (the way a file manager offers a file), with a COPY action.
A pointer driven by `xdotool` (press inside, move out, release over another window) performs a
real XDND drag through the X server, so the target sees what it would see from a file manager.

Reports on stdout, one line each, flushed at once, so the test can wait on them and explain a
failure: `ready <x-window-id>` once the window is mapped, `drag-begin`, `data-get` when the
target asks for the data, `drag-end`, and `drag-failed <reason>`. Exits when the window closes
or on SIGTERM; exits with status 2 and a message on stderr when FILE is missing or the arguments
are wrong.
"""

import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import Gdk, GdkPixbuf, GLib, Gtk  # noqa: E402  (versions are chosen first)


def report(line: str) -> None:
    print(line, flush=True)


def parse_arguments(argv: list[str]) -> tuple[Path, int, int, int, int]:
    if len(argv) != 6:
        raise ValueError("usage: drag_source.py FILE X Y WIDTH HEIGHT")
    path = Path(argv[1]).resolve()
    if not path.is_file():
        raise ValueError(f"no such file to offer: {path}")
    try:
        x, y, width, height = (int(value) for value in argv[2:])
    except ValueError as error:
        raise ValueError(f"X, Y, WIDTH and HEIGHT must be whole numbers: {error}") from error
    if width < 40 or height < 40:
        raise ValueError("the window needs at least 40 x 40 pixels to be dragged from")
    return path, x, y, width, height


def build_window(path: Path, x: int, y: int, width: int, height: int) -> Gtk.Window:
    uri = path.as_uri()
    window = Gtk.Window(title="Cria drag source")
    # No window manager under Xvfb: an undecorated window at a fixed place keeps the pointer
    # arithmetic of the test exact either way.
    window.set_decorated(False)
    window.set_default_size(width, height)
    window.move(x, y)

    area = Gtk.EventBox()
    label = Gtk.Label(label=f"Drag me:\n{path.name}")
    label.set_justify(Gtk.Justification.CENTER)
    area.add(label)
    area.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
    area.drag_source_add_uri_targets()
    # The picture itself under the pointer, as a file manager shows it; a file GTK cannot read
    # as a picture is dragged with GTK's plain icon.
    try:
        icon = GdkPixbuf.Pixbuf.new_from_file_at_scale(str(path), 64, 64, True)
        area.drag_source_set_icon_pixbuf(icon)
    except GLib.Error:
        pass

    def on_data_get(_widget, _context, selection, _info, _time):
        report("data-get")
        selection.set_uris([uri])

    def on_drag_failed(_widget, _context, result):
        report(f"drag-failed {result.value_nick}")
        return False

    area.connect("drag-begin", lambda *_: report("drag-begin"))
    area.connect("drag-data-get", on_data_get)
    area.connect("drag-end", lambda *_: report("drag-end"))
    area.connect("drag-failed", on_drag_failed)
    window.add(area)

    def on_mapped(widget, _event):
        report(f"ready {widget.get_window().get_xid()}")
        return False

    window.connect("map-event", on_mapped)
    window.connect("destroy", Gtk.main_quit)
    return window


def main() -> int:
    try:
        path, x, y, width, height = parse_arguments(sys.argv)
    except ValueError as error:
        print(f"drag_source.py: {error}", file=sys.stderr)
        return 2
    if not Gtk.init_check(sys.argv)[0]:
        print("drag_source.py: cannot open the display (is DISPLAY set?)", file=sys.stderr)
        return 2
    window = build_window(path, x, y, width, height)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, Gtk.main_quit)
    window.show_all()
    Gtk.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
