import pytest


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_broker_when_it_is_down(client, settings):
    # Nothing listens on port 1: the broker is "down".
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert list(body["failed"]) == ["broker"]
    assert "database" not in body["failed"]


@pytest.mark.django_db
def test_healthz_names_a_missing_filesystem_broker_folder(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone"), "data_folder_out": ""}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "gone" in response.json()["failed"]["broker"]
