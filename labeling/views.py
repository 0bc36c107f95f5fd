from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"heading": "Label queue", "message": "The queue is empty."})


@login_required
def labeling(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"heading": "Labeling", "message": "Nothing to label yet."})
