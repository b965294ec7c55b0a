"""COLMAP structure-from-motion in its own process: ``python -m gvfx.analyze.colmap_worker ARGS_JSON``.

pycolmap is imported only here. With pycolmap loaded, OpenImageIO's PNG writer aborts the process
(two bundled libpng), so the main process writes the proxy images and this process only reads them.

Protocol (version 1). ``ARGS_JSON`` is a file holding::

    {"version": 1, "image_dir": str, "image_names": [str, ...] (plate order), "work_dir": str,
     "out_json": str, "out_npz": str, "focal_px": float | null, "camera_model": "SIMPLE_PINHOLE",
     "mask_dir": str | null, "max_features": int, "overlap": int, "num_threads": int,
     "max_runtime_s": float, "seed": int}

Optional keys: ``extraction_threads``, ``matching_threads``, ``mapping_threads`` (default ``num_threads``);
``exhaustive`` (match every pair instead of sequential ``overlap``), ``quadratic_overlap`` (default true);
``reuse_features`` (keep the database of an earlier run in ``work_dir``: no new extraction, and the
matcher only adds pairs not matched yet); the mapper's ``init_min_tri_angle``, ``init_min_num_inliers``,
``init_max_forward_motion``, ``abs_pose_min_num_inliers`` (COLMAP's defaults when absent).
Reproducible: the same images and ``seed`` give the same output with any thread count (image ids are
fixed in plate order before the extractor's threads run; COLMAP's PRNG and every RANSAC are seeded):
bit-identical while the bundle adjustments stay under Ceres' multi-threading threshold
(``ba_min_num_residuals_for_cpu_multi_threading``, 50 000 residuals), within ~1e-14 above it (Ceres'
threads sum in varying order; 48 frames at 960 px: poses differ by 4e-15).

It writes ``out_npz`` (arrays) then ``out_json`` (written last: its presence means the worker finished)::

    {"version": 1, "status": "ok" | "error", "message": str, "camera": {"model", "width", "height",
     "params"}, "images": {name: {"R": 3x3 cam_from_world, "t": 3}}, "num_keypoints": {name: int},
     "pairs": [[i, j, config_name, num_inliers], ...], "seconds": {"features", "matching", "mapping"}}

NPZ arrays: ``points_xyz`` (N,3) float64, ``points_rgb`` (N,3) uint8, ``points_err`` (N,) px,
``points_id`` (N,) int64, ``obs_image`` (M,) int32 index into image_names, ``obs_point`` (M,) int32 index
into points, ``obs_uv`` (M,2) float32 proxy pixels (centres at i+0.5), and for
every verified pair the inlier matches (at most ``max_pair_matches`` per pair, default 400, a random
subset): ``match_pair`` (K,2) int32 image indices, ``match_uv1``/``match_uv2``
(K,2) float32 proxy pixels; the same for the pair's raw (unverified) matches: ``raw_pair``,
``raw_uv1``, ``raw_uv2``. COLMAP conventions are kept here (OpenCV camera: +X right, +Y down, +Z
forward); the main process converts.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

PROTOCOL_VERSION = 1


def _write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _pair_id_to_images(pair_id: int) -> tuple[int, int]:
    max_id = 2147483647
    id2 = pair_id % max_id
    id1 = (pair_id - id2) // max_id
    return int(id1), int(id2)


def run(args: dict) -> dict:
    """Extract, match and map; returns the JSON summary and writes the NPZ (see the module doc)."""
    import pycolmap

    image_dir = Path(args["image_dir"])
    names: list[str] = list(args["image_names"])
    work = Path(args["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "database.db"
    reuse = bool(args.get("reuse_features")) and db_path.exists()
    if db_path.exists() and not reuse:
        db_path.unlink()
    sparse = work / "sparse"
    if sparse.exists():
        import shutil

        shutil.rmtree(sparse)
    seconds: dict[str, float] = {}
    nthreads = int(args.get("num_threads", -1))
    seed = int(args.get("seed", 0))
    # Reproducibility: COLMAP's PRNG is thread-local; seed this thread's, and give every RANSAC its seed.
    pycolmap.set_random_seed(seed)

    t0 = time.perf_counter()
    ro = pycolmap.ImageReaderOptions()
    ro.camera_model = str(args.get("camera_model", "SIMPLE_PINHOLE"))
    focal_px = args.get("focal_px")
    if focal_px:
        from PIL import Image  # only to read the proxy size

        with Image.open(image_dir / names[0]) as im:
            w, h = im.size
        extra = ",0" if ro.camera_model == "SIMPLE_RADIAL" else ""
        ro.camera_params = f"{float(focal_px)},{w / 2.0},{h / 2.0}{extra}"
    if args.get("mask_dir"):
        ro.mask_path = str(args["mask_dir"])
    eo = pycolmap.FeatureExtractionOptions()
    eo.num_threads = int(args.get("extraction_threads", nthreads))
    eo.sift.max_num_features = int(args.get("max_features", 4096))
    # Image ids in plate order, fixed before extraction: the extractor's threads would otherwise write
    # images (and so number them) in whatever order they finish, and ids steer matching and mapping.
    if not reuse:
        pycolmap.Database.open(str(db_path)).close()  # creates the tables
        pycolmap.import_images(db_path, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, image_names=names,
                               options=ro)
        pycolmap.extract_features(db_path, image_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=ro, extraction_options=eo, device=pycolmap.Device.cpu)
    seconds["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mo_match = pycolmap.FeatureMatchingOptions()
    mo_match.num_threads = int(args.get("matching_threads", nthreads))
    vo = pycolmap.TwoViewGeometryOptions()
    vo.ransac.random_seed = seed
    if args.get("exhaustive"):
        pycolmap.match_exhaustive(db_path, matching_options=mo_match, verification_options=vo,
                                  device=pycolmap.Device.cpu)
    else:
        po = pycolmap.SequentialPairingOptions()
        po.overlap = int(args.get("overlap", 10))
        po.quadratic_overlap = bool(args.get("quadratic_overlap", True))
        pycolmap.match_sequential(db_path, matching_options=mo_match, pairing_options=po,
                                  verification_options=vo, device=pycolmap.Device.cpu)
    seconds["matching"] = time.perf_counter() - t0

    # What the database says: keypoints per image, two-view geometry per pair.
    db = pycolmap.Database.open(str(db_path))
    try:
        images = {im.image_id: im.name for im in db.read_all_images()}
        index = {name: i for i, name in enumerate(names)}
        num_kp = {images[i]: int(db.num_keypoints_for_image(i)) for i in images}
        kps = {i: np.asarray(db.read_keypoints(i))[:, :2] for i in images}
        pairs, m_pair, m_uv1, m_uv2 = [], [], [], []
        r_pair, r_uv1, r_uv2 = [], [], []
        rng = np.random.default_rng(seed)
        max_pair_matches = int(args.get("max_pair_matches", 400))
        pair_ids, tvgs = db.read_two_view_geometries()
        for pid, tvg in zip(pair_ids, tvgs):
            a, b = _pair_id_to_images(int(pid))
            ia, ib = index[images[a]], index[images[b]]
            inl = np.asarray(tvg.inlier_matches).reshape(-1, 2)
            if ia > ib:
                ia, ib, inl = ib, ia, inl[:, ::-1]
                a, b = b, a
            cfg = tvg.config
            cfg_name = cfg.name if hasattr(cfg, "name") else pycolmap.TwoViewGeometryConfiguration(int(cfg)).name
            pairs.append([ia, ib, cfg_name, int(len(inl))])
            if len(inl) > max_pair_matches:  # enough for homographies and motion statistics
                inl = inl[rng.choice(len(inl), max_pair_matches, replace=False)]
            if len(inl):
                m_pair.append(np.tile([ia, ib], (len(inl), 1)))
                m_uv1.append(kps[a][inl[:, 0]])
                m_uv2.append(kps[b][inl[:, 1]])
            # the raw matches too: a pair COLMAP calls planar keeps only its homography's inliers, which
            # hide the parallax the motion class looks for
            raw = np.asarray(db.read_matches(a, b)).reshape(-1, 2)
            if len(raw) > max_pair_matches:
                raw = raw[rng.choice(len(raw), max_pair_matches, replace=False)]
            if len(raw):
                r_pair.append(np.tile([ia, ib], (len(raw), 1)))
                r_uv1.append(kps[a][raw[:, 0]])
                r_uv2.append(kps[b][raw[:, 1]])
    finally:
        db.close()

    t0 = time.perf_counter()
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = int(args.get("mapping_threads", nthreads))
    opts.multiple_models = False
    opts.random_seed = seed
    opts.extract_colors = True
    for key in ("init_min_tri_angle", "init_min_num_inliers", "init_max_forward_motion", "abs_pose_min_num_inliers"):
        if args.get(key) is not None:
            setattr(opts.mapper, key, type(getattr(opts.mapper, key))(args[key]))
    if float(args.get("max_runtime_s", 0)) > 0:
        opts.max_runtime_seconds = int(float(args["max_runtime_s"]))
    if focal_px:
        opts.ba_refine_focal_length = False
    opts.ba_refine_extra_params = ro.camera_model != "SIMPLE_PINHOLE"
    recs = pycolmap.incremental_mapping(db_path, image_dir, sparse, options=opts)
    seconds["mapping"] = time.perf_counter() - t0

    out: dict = {"version": PROTOCOL_VERSION, "status": "ok", "message": "", "num_keypoints": num_kp,
                 "pairs": pairs, "seconds": seconds, "images": {}, "camera": None}
    arrays: dict[str, np.ndarray] = {
        "match_pair": np.concatenate(m_pair).astype(np.int32) if m_pair else np.zeros((0, 2), np.int32),
        "match_uv1": np.concatenate(m_uv1).astype(np.float32) if m_uv1 else np.zeros((0, 2), np.float32),
        "match_uv2": np.concatenate(m_uv2).astype(np.float32) if m_uv2 else np.zeros((0, 2), np.float32),
        "raw_pair": np.concatenate(r_pair).astype(np.int32) if r_pair else np.zeros((0, 2), np.int32),
        "raw_uv1": np.concatenate(r_uv1).astype(np.float32) if r_uv1 else np.zeros((0, 2), np.float32),
        "raw_uv2": np.concatenate(r_uv2).astype(np.float32) if r_uv2 else np.zeros((0, 2), np.float32),
    }
    if recs:
        rec = max(recs.values(), key=lambda r: r.num_reg_images())
        cam = next(iter(rec.cameras.values()))
        out["camera"] = {"model": cam.model.name, "width": int(cam.width), "height": int(cam.height),
                         "params": [float(x) for x in cam.params]}
        point_ids = sorted(rec.points3D.keys())
        row = {pid: k for k, pid in enumerate(point_ids)}
        xyz = np.array([rec.points3D[p].xyz for p in point_ids], dtype=np.float64).reshape(-1, 3)
        rgb = np.array([rec.points3D[p].color for p in point_ids], dtype=np.uint8).reshape(-1, 3)
        err = np.array([rec.points3D[p].error for p in point_ids], dtype=np.float64)
        o_img, o_pt, o_uv = [], [], []
        for image in rec.images.values():
            if not image.has_pose:
                continue
            pose = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
            m = np.asarray(pose.matrix())
            out["images"][image.name] = {"R": m[:3, :3].tolist(), "t": m[:3, 3].tolist()}
            idx = index[image.name]
            for p2 in image.points2D:
                if p2.has_point3D():
                    o_img.append(idx)
                    o_pt.append(row[p2.point3D_id])
                    o_uv.append(p2.xy)
        arrays.update(points_xyz=xyz, points_rgb=rgb, points_err=err,
                      points_id=np.asarray(point_ids, dtype=np.int64),
                      obs_image=np.asarray(o_img, dtype=np.int32), obs_point=np.asarray(o_pt, dtype=np.int32),
                      obs_uv=np.asarray(o_uv, dtype=np.float32).reshape(-1, 2))
    else:
        out["message"] = "COLMAP could not initialise a reconstruction"
    tmp = f"{args['out_npz']}.tmp{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, args["out_npz"])
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gvfx.analyze.colmap_worker ARGS_JSON", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        args = json.load(fh)
    try:
        out = run(args)
    except Exception as exc:  # reported to the main process, which raises a gvfx error
        out = {"version": PROTOCOL_VERSION, "status": "error",
               "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        _write_json_atomic(args["out_json"], out)
        return 1
    _write_json_atomic(args["out_json"], out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
