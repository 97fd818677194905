from rest_framework.routers import SimpleRouter

from customers.api import views

router = SimpleRouter(trailing_slash=False)
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("events", views.EventViewSet, basename="event")
router.register("import-jobs", views.ImportJobViewSet, basename="import-job")

urlpatterns = router.urls
