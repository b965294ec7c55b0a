"""The compositor node tree: plate, element layers and the documented rebuild recipe (docs/match.md).

Blender 5 has no ``scene.node_tree``: the comp lives in a ``CompositorNodeTree`` node group set as
``scene.compositing_node_group``, with a group output socket instead of a Composite node. Blender 4.x
uses the scene's own node tree, a Composite node and the compositor's Mix RGB / Math nodes. Nodes gvfx
owns carry names starting with ``gvfx`` and are rebuilt on every update; other nodes in the tree are
left alone.

Per element (``el = (rgba + lightwrap + grain) * (1 - holdout)``, alpha without lightwrap/grain)::

    Combined --Mix Add-- lightwrap --Mix Add-- grain --Set Alpha (Replace, element Alpha)--
        --Set Alpha (Apply Mask, 1 - holdout)--> el
    plate --Mix Multiply (1 - shadow_1)-- ... --Mix Add-- platelight_1 ... --> bg   (colour only)
    el_1 + el_2 ... (colour Mix Add, alpha Math Add, Set Alpha Replace) --> fg
    Alpha Over (Background = bg, Foreground = fg, Straight Alpha off) --> output
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import bpy

TREE_NAME = "gvfx comp"
PREFIX = "gvfx"
OWNED_KEY = "gvfx_owned"  # custom property on the images gvfx loaded (and may reuse or change)

_NUM_RE = re.compile(r"^(.*?)(#+|%0(\d)d|@+)(\D*)$")


@dataclass(frozen=True)
class Layered:
    """An element sequence to comp: its name, Blender image and first/last frame numbers."""

    name: str
    image: "bpy.types.Image"
    first: int
    last: int


def frame_file(pattern: str, frame: int) -> str:
    """``/a/fire.####.exr`` (or ``%04d``, ``@@@@``) at ``frame`` -> ``/a/fire.1001.exr``."""
    m = _NUM_RE.match(pattern)
    if not m:
        return pattern
    head, token, pad, tail = m.group(1), m.group(2), m.group(3), m.group(4)
    width = int(pad) if pad else len(token)
    return f"{head}{frame:0{width}d}{tail}"


def load_sequence(pattern: str, first: int, last: int, *, name: str | None = None,
                  colorspace: str = "ACEScg", premultiplied: bool = True) -> "bpy.types.Image":
    """Load an EXR sequence as one Blender image (``source='SEQUENCE'``), reusing an image gvfx loaded of
    that file (the artist's own images are never changed)."""
    path = frame_file(pattern, first)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"first frame of the sequence is missing: {path}")
    img = None
    for existing in bpy.data.images:
        if (existing.get(OWNED_KEY) and existing.source == "SEQUENCE"
                and os.path.abspath(bpy.path.abspath(existing.filepath)) == os.path.abspath(path)):
            img = existing
            break
    if img is None:
        img = bpy.data.images.load(path, check_existing=False)
        img.source = "SEQUENCE"
        img[OWNED_KEY] = True
    if name:
        img.name = name
    try:
        img.colorspace_settings.name = colorspace
    except TypeError:  # not in this Blender's OCIO config: keep what Blender chose
        pass
    if premultiplied:
        img.alpha_mode = "PREMUL"
    img.reload()
    return img


def is_legacy() -> bool:
    """Blender before 5.0: the scene's own node tree and a Composite node."""
    return bpy.app.version < (5, 0, 0)


def _tree(scene):
    if is_legacy():
        fresh = scene.node_tree is None
        scene.use_nodes = True  # makes the tree, with Blender's default Render Layers/Composite/Viewer
        tree = scene.node_tree
        if fresh:  # a tree gvfx made: drop the defaults (Render Layers would make the render draw the scene)
            for n in list(tree.nodes):
                tree.nodes.remove(n)
        return tree
    tree = scene.compositing_node_group
    if tree is None:
        tree = bpy.data.node_groups.get(TREE_NAME) or bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
        scene.compositing_node_group = tree
    return tree


def _output_socket(tree):
    """The socket the comp goes into: the group output (5.x) or a Composite node (4.x)."""
    if is_legacy():
        node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
        if node is None:
            node = tree.nodes.new("CompositorNodeComposite")
            node.name = f"{PREFIX} composite"
        return node, node.inputs["Image"]
    if not any(s.in_out == "OUTPUT" and s.name == "Image" for s in tree.interface.items_tree
               if getattr(s, "item_type", "SOCKET") == "SOCKET"):
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
    if node is None:
        node = tree.nodes.new("NodeGroupOutput")
        node.name = f"{PREFIX} output"
    return node, node.inputs["Image"]


def _by_id(sockets, identifier: str) -> int:
    """Index of a socket by identifier (names repeat on ShaderNodeMix: A/B for every data type)."""
    for i, sock in enumerate(sockets):
        if sock.identifier == identifier:
            return i
    raise KeyError(f"no socket {identifier!r}")


class _Builder:
    def __init__(self, tree):
        self.tree = tree

    def node(self, idname: str, name: str, x: float, y: float):
        n = self.tree.nodes.new(idname)
        n.name = n.label = f"{PREFIX} {name}"
        n.location = (x, y)
        return n

    def link(self, a, b):
        self.tree.links.new(a, b)

    def mix(self, blend: str, name: str, x: float, y: float):
        """A colour mix with factor 1: returns (node, A, B, result)."""
        if is_legacy():  # 4.2 cannot add a ShaderNodeMix to a compositor tree (4.5 can): Mix RGB is in every 4.x
            n = self.node("CompositorNodeMixRGB", name, x, y)
            n.blend_type = blend
            n.inputs[_by_id(n.inputs, "Fac")].default_value = 1.0
            return (n, n.inputs[_by_id(n.inputs, "Image")], n.inputs[_by_id(n.inputs, "Image_001")],
                    n.outputs["Image"])
        n = self.node("ShaderNodeMix", name, x, y)
        n.data_type = "RGBA"
        n.blend_type = blend
        n.inputs[_by_id(n.inputs, "Factor_Float")].default_value = 1.0
        return (n, n.inputs[_by_id(n.inputs, "A_Color")], n.inputs[_by_id(n.inputs, "B_Color")],
                n.outputs[_by_id(n.outputs, "Result_Color")])

    def math(self, op: str, name: str, x: float, y: float):
        n = self.node("CompositorNodeMath" if is_legacy() else "ShaderNodeMath", name, x, y)
        n.operation = op
        return n

    def set_alpha(self, replace: bool, name: str, x: float, y: float):
        n = self.node("CompositorNodeSetAlpha", name, x, y)
        if "Type" in n.inputs:  # 5.x: a menu socket
            n.inputs["Type"].default_value = "Replace Alpha" if replace else "Apply Mask"
        else:
            n.mode = "REPLACE_ALPHA" if replace else "APPLY"
        return n

    def image(self, img, first: int, last: int, name: str, x: float, y: float):
        n = self.node("CompositorNodeImage", name, x, y)
        n.image = img
        n.frame_start = first          # scene frame showing the first file
        n.frame_duration = last - first + 1
        n.frame_offset = first - 1     # file number = scene frame - frame_start + 1 + offset
        return n


def _out(node, *names):
    for nm in names:
        s = node.outputs.get(nm)
        if s is not None:
            return s
    return None


def build_comp(scene, plate: Layered, elements: list[Layered]):
    """Build or update the gvfx nodes of the scene's comp; returns the node tree."""
    tree = _tree(scene)
    for n in [n for n in tree.nodes if n.name.startswith(PREFIX) and n.bl_idname not in
              ("NodeGroupOutput", "CompositorNodeComposite")]:
        tree.nodes.remove(n)
    out_node, out_socket = _output_socket(tree)
    b = _Builder(tree)
    plate_node = b.image(plate.image, plate.first, plate.last, "plate", -1400, 400)
    bg = _out(plate_node, "Image", "Combined")
    el_outs = []  # (rgba socket, alpha socket)
    lights = []  # (element name, platelight socket): added to bg after every shadow
    for i, el in enumerate(elements):
        y = -300 * i
        x0 = -1400
        img = b.image(el.image, el.first, el.last, f"{el.name} element", x0, y - 200)
        rgba = _out(img, "Combined", "Image")
        alpha = _out(img, "Alpha")
        col = rgba
        for j, layer in enumerate(("lightwrap", "grain")):
            sock = _out(img, layer)
            if sock is None:
                continue
            _, a, bb, res = b.mix("ADD", f"{el.name} +{layer}", x0 + 250 + 180 * j, y - 200)
            b.link(col, a)
            b.link(sock, bb)
            col = res
        keep = b.set_alpha(True, f"{el.name} alpha", x0 + 650, y - 200)
        b.link(col, keep.inputs["Image"])
        b.link(alpha, keep.inputs["Alpha"])
        el_out = keep.outputs["Image"]
        hold = _out(img, "holdout")
        if hold is not None:
            inv = b.math("SUBTRACT", f"{el.name} 1-holdout", x0 + 650, y - 380)
            inv.inputs[0].default_value = 1.0
            b.link(hold, inv.inputs[1])
            mask = b.set_alpha(False, f"{el.name} holdout", x0 + 850, y - 200)
            b.link(el_out, mask.inputs["Image"])
            b.link(inv.outputs[0], mask.inputs["Alpha"])
            el_out = mask.outputs["Image"]
        shadow = _out(img, "shadow")
        if shadow is not None:
            inv = b.math("SUBTRACT", f"{el.name} 1-shadow", x0 + 250, y + 150)
            inv.inputs[0].default_value = 1.0
            b.link(shadow, inv.inputs[1])
            _, a, bb, res = b.mix("MULTIPLY", f"{el.name} shadow", x0 + 450, 400 - 60 * i)
            b.link(bg, a)
            b.link(inv.outputs[0], bb)
            bg = res
        light = _out(img, "platelight")
        if light is not None:
            lights.append((el.name, light))
        el_alpha = None
        if len(elements) > 1:  # the sum needs each element's alpha
            sep = b.node("CompositorNodeSeparateColor", f"{el.name} split", x0 + 1050, y - 350)
            b.link(el_out, sep.inputs[0])
            el_alpha = sep.outputs["Alpha"]
        el_outs.append((el_out, el_alpha))
    for k, (name, light) in enumerate(lights):
        _, a, bb, res = b.mix("ADD", f"{name} +platelight", -600, 500 + 60 * k)
        b.link(bg, a)
        b.link(light, bb)
        bg = res
    fg = None
    if el_outs:
        fg, fg_alpha = el_outs[0]
        for k, (col, alpha) in enumerate(el_outs[1:], start=1):
            _, a, bb, res = b.mix("ADD", f"sum {k}", -200, -150 * k)
            b.link(fg, a)
            b.link(col, bb)
            add = b.math("ADD", f"sum alpha {k}", -200, -150 * k - 80)
            b.link(fg_alpha, add.inputs[0])
            b.link(alpha, add.inputs[1])
            fix = b.set_alpha(True, f"sum {k} alpha", 0, -150 * k)
            b.link(res, fix.inputs["Image"])
            b.link(add.outputs[0], fix.inputs["Alpha"])
            fg, fg_alpha = fix.outputs["Image"], add.outputs[0]
    if fg is not None:
        over = b.node("CompositorNodeAlphaOver", "over", 200, 200)
        if "Straight Alpha" in over.inputs:
            over.inputs["Straight Alpha"].default_value = False
        else:
            over.use_premultiply = False
        bg_in = over.inputs.get("Background") or over.inputs[1]
        fg_in = over.inputs.get("Foreground") or over.inputs[2]
        b.link(bg, bg_in)
        b.link(fg, fg_in)
        result = over.outputs["Image"]
    else:
        result = bg
    out_node.location = (450, 200)
    b.link(result, out_socket)
    viewer = b.node("CompositorNodeViewer", "viewer", 450, 0)
    b.link(result, viewer.inputs[0])
    return tree


def gvfx_nodes(tree) -> dict:
    """The gvfx-owned nodes of a tree by name (for tests and the panel)."""
    return {n.name: n for n in tree.nodes if n.name.startswith(PREFIX)}
