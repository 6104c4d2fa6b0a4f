app_name = "ml"
urlpatterns = []
