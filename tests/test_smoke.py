def test_world_builds(world):
    assert world.acme.slug == "acme"
