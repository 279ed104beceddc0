"""Face framing: keypoint alignment onto the FER2013 template, box framings, synthetic scenes."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from fer_keras.app.align import (
    FER2013_KEYPOINTS,
    BoxFraming,
    KeypointFraming,
    compose,
    decompose,
    similarity,
    warp_crop,
)
from fer_keras.app.detect import BLAZEFACE_ZOOM, FaceBox, face_crop, make_detector
from fer_keras.app.synthetic import SCENES, PlacedFace, Scene, render_frames
from fer_keras.contract import CROP_SIZE
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError

SAMPLE = "fer_keras/samples/astronaut.jpg"


def turn(angle: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """The 2x3 map from 48x48 crop pixels to a frame: scale, turn by ``angle`` degrees, centre."""
    a = np.radians(angle)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    return np.hstack([m, (np.asarray(centre) - m @ [CROP_SIZE / 2, CROP_SIZE / 2])[:, None]]).astype(np.float32)


def pattern() -> np.ndarray:
    """A 48x48 'face' with a feature at each template keypoint: where things land is visible."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(60, 200, (CROP_SIZE, CROP_SIZE)).astype(np.float32), (0, 0), 1.5)
    for x, y in FER2013_KEYPOINTS[:4]:
        cv2.circle(img, (round(x), round(y)), 3, 255, -1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("angle,scale,centre", [(0, 1, (24, 24)), (20, 3.0, (300, 200)), (-15, 5.5, (200, 260))])
def test_a_turned_and_scaled_face_comes_out_framed_like_the_template(angle, scale, centre):
    to_frame = turn(angle, scale, centre)
    face = pattern()
    frame = cv2.warpAffine(face, to_frame, (640, 480), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    keypoints = cv2.transform(FER2013_KEYPOINTS[None], to_frame)[0]
    box = FaceBox(0, 0, 10, 10, keypoints=tuple(map(tuple, keypoints)))

    matrix = KeypointFraming().matrix(box)
    scale_left, angle_left, dx, dy = decompose(compose(matrix, to_frame))
    assert scale_left == pytest.approx(1, abs=1e-3) and angle_left == pytest.approx(0, abs=0.05)
    assert abs(dx) < 1e-3 and abs(dy) < 1e-3
    crop = warp_crop(frame, matrix)
    assert crop.shape == (CROP_SIZE, CROP_SIZE)
    # the same pixels as the original face, up to resampling
    aligned_error = np.abs(crop.astype(int) - face.astype(int))[4:-4, 4:-4].mean()
    assert aligned_error < 12
    # a box crop of the same face (the turned face's bounding square) is framed differently
    corners = cv2.transform(np.float32([[[0, 0], [48, 0], [0, 48], [48, 48]]]), to_frame)[0]
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    upright = face_crop(frame, FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    if angle:
        assert np.abs(upright.astype(int) - face.astype(int))[4:-4, 4:-4].mean() > 2 * aligned_error


def test_similarity_is_exact_and_least_squares():
    src = np.float32([[0, 0], [10, 0], [5, 8], [5, 14]])
    true = turn(30, 2.0, (100, 50))
    dst = cv2.transform(src[None], true)[0]
    np.testing.assert_allclose(similarity(src, dst), true, atol=1e-4)
    noisy = dst + np.float32([[0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5]])
    m = similarity(src, noisy)
    assert decompose(compose(m, cv2.invertAffineTransform(true)))[0] == pytest.approx(1, abs=0.05)
    with pytest.raises(ValueError, match="coincide"):
        similarity(np.zeros((4, 2)), dst)


def test_box_framing_grows_and_shifts_the_square():
    gray = np.arange(200 * 200, dtype=np.uint32).reshape(200, 200) % 251
    gray = gray.astype(np.uint8)
    box = FaceBox(50, 60, 48, 48)
    same = face_crop(gray, box, 0.0)
    np.testing.assert_array_equal(same, gray[60:108, 50:98])
    shifted = face_crop(gray, box, BoxFraming(scale=1.0, dx=0.25, dy=-0.25))
    np.testing.assert_array_equal(shifted, gray[48:96, 62:110])
    grown = BoxFraming.from_margin(0.25).matrix(box)
    assert decompose(grown)[0] == pytest.approx(48 / 72)


def test_keypoint_framing_falls_back_to_the_box_without_keypoints():
    framing = KeypointFraming(fallback=BoxFraming(scale=1.2))
    box = FaceBox(10, 10, 50, 50)
    np.testing.assert_allclose(framing.matrix(box), BoxFraming(scale=1.2).matrix(box))


def test_a_zoomed_keypoint_framing_is_the_template_framing_scaled_about_the_crop_centre():
    to_frame = turn(10, 4.0, (300, 220))
    keypoints = cv2.transform(FER2013_KEYPOINTS[None], to_frame)[0]
    box = FaceBox(0, 0, 10, 10, keypoints=tuple(map(tuple, keypoints)))
    scale, angle, dx, dy = decompose(compose(KeypointFraming(zoom=0.8).matrix(box), to_frame))
    # crop pixels per face pixel grow by 1 / zoom: the crop covers a 0.8x square, same centre and turn
    assert scale == pytest.approx(1 / 0.8, abs=1e-3) and angle == pytest.approx(0, abs=0.05)
    assert abs(dx) < 1e-3 and abs(dy) < 1e-3


def test_blazeface_keypoints_level_a_turned_photo():
    """The real detector on the sample photo, upright and turned: in the aligned crop the eyes are
    level and on the template; the aligned crops agree with each other far better than box crops."""
    photo = cv2.imread(SAMPLE)
    h, w = photo.shape[:2]
    detector = make_detector("dnn")
    crops = {}
    for angle in (0, 20, -20):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 0.8)
        frame = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        faces = detector(frame)
        assert len(faces) == 1 and len(faces[0].keypoints) == 6
        (rx, ry), (lx, ly), (nx, ny), (mx, my) = faces[0].keypoints[:4]
        assert rx < nx < lx and max(ry, ly) < ny < my + 5
        eyes = cv2.transform(np.float32([faces[0].keypoints[:2]]), detector.framings[0].matrix(faces[0]))[0]
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1.5
        template_eyes = CROP_SIZE / 2 + (FER2013_KEYPOINTS[:2] - CROP_SIZE / 2) / BLAZEFACE_ZOOM
        assert np.abs(eyes - template_eyes).max() < 2.5
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        crops[angle] = (face_crop(gray, faces[0], detector.framings[0]), face_crop(gray, faces[0], 0.0))
    for angle in (20, -20):
        aligned = np.abs(crops[0][0].astype(int) - crops[angle][0].astype(int)).mean()
        boxed = np.abs(crops[0][1].astype(int) - crops[angle][1].astype(int)).mean()
        assert aligned < 0.6 * boxed


def test_scenes_record_the_true_framing():
    rng = np.random.default_rng(0)
    images = np.stack([cv2.GaussianBlur(rng.uniform(0, 255, (48, 48)), (0, 0), 2) for _ in range(4)]).astype(np.uint8)
    faces = FaceArrays(images, np.arange(4) % 7, *np.full((3, 4), ""))
    for scene in (SCENES["rotation"], SCENES["two-sizes"], Scene(border="replicate", blur=1.0, jpeg=50, light=0.5)):
        frame, placed = next(render_frames(faces, scene, frames=1))
        assert frame.shape == (480, 640, 3) and len(placed) == len(scene.face_px)
        for face in placed:
            cut = warp_crop(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), face.true_matrix())
            original = faces.images[face.index]
            # lighting changes the values, not where things are: compare by correlation
            assert np.corrcoef(cut[6:-6, 6:-6].ravel(), original[6:-6, 6:-6].ravel())[0, 1] > 0.9
            off = warp_crop(
                cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), replace(face, cx=face.cx + face.side / 4).true_matrix()
            )
            assert np.corrcoef(off[6:-6, 6:-6].ravel(), original[6:-6, 6:-6].ravel())[0, 1] < 0.6
    with pytest.raises(FerKerasError, match="unknown border"):
        Scene(border="mirror")
    assert PlacedFace(0, 0, 100, 100, 50, 0).box() == (75, 75, 50, 50)


def test_a_moving_scene_moves_each_face_and_keeps_it_in_the_frame():
    rng = np.random.default_rng(1)
    images = np.stack([cv2.GaussianBlur(rng.uniform(0, 255, (48, 48)), (0, 0), 2) for _ in range(6)]).astype(np.uint8)
    faces = FaceArrays(images, np.arange(6) % 7, *np.full((3, 6), ""))
    frames = list(render_frames(faces, SCENES["moving"], frames=20, hold=10, seed=2))
    for stay in (frames[:10], frames[10:]):
        first = stay[0][1]
        for step, (_, placed) in enumerate(stay):
            for start, face in zip(first, placed):
                assert (face.index, face.side) == (start.index, start.side)
                assert np.allclose([face.cx - start.cx, face.cy - start.cy], [4.0 * step, 2.0 * step])
                x, y, w, h = face.box()
                assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
        # the pixels moved with the face: its true framing still cuts out its crop at the last step
        frame, placed = stay[-1]
        for face in placed:
            cut = warp_crop(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), face.true_matrix())
            assert np.corrcoef(cut[6:-6, 6:-6].ravel(), faces.images[face.index][6:-6, 6:-6].ravel())[0, 1] > 0.9
