from rest_framework.routers import SimpleRouter

from tagging.api import views
from tagging.api.segments import SegmentViewSet
from tagging.api.suggestions import CombinationSuggestionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tag-groups", views.TagGroupViewSet, basename="tag-group")
router.register("tags", views.TagViewSet, basename="tag")
router.register("personal-tag-groups", views.PersonalGroupViewSet, basename="personal-tag-group")
router.register("segments", SegmentViewSet, basename="segment")
router.register("personal-tags", views.PersonalTagViewSet, basename="personal-tag")
router.register("tag-combinations", CombinationSuggestionViewSet, basename="tag-combination")

urlpatterns = router.urls
