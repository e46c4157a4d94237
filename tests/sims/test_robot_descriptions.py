"""Robot descriptions: every shipped file loads, agrees with its model, and bad names are helped."""

import pytest

from sims.robots import known_robots, load_robot
from sims.robots.description import UnknownRobotDescriptionError, parse_description


@pytest.mark.parametrize("name", known_robots())
def test_every_shipped_description_loads_and_its_model_exists(name):
    d = load_robot(name)
    assert d.name == name
    assert d.model.is_file(), d.model
    assert d.spec().n_joints == len(d.joint_names) > 0


def test_mk6_description_matches_the_simulated_arm():
    from sims.mujoco_sim import MujocoSim

    sim = MujocoSim([])
    try:
        assert load_robot("mk6").spec() == sim.robot
    finally:
        sim.close()


def test_unknown_robot_names_the_known_ones_and_the_closest():
    with pytest.raises(UnknownRobotDescriptionError, match=r"did you mean 'mk6'"):
        load_robot("mk7")


def test_a_misspelt_field_is_refused_not_ignored(tmp_path):
    import tomllib

    raw = tomllib.loads((load_robot("mk6").model.parent.parent / "robots" / "mk6.toml")
                        .read_text())
    raw["contol_hz"] = raw.pop("control_hz")
    with pytest.raises(ValueError, match="contol_hz"):
        parse_description(raw, tmp_path, "mine")
