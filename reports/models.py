# Ads data and weekly reports arrive with the reports issue; the app exists so its place is fixed.
