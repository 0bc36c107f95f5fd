from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from config.roles import LEAD, role_required


@login_required
def history(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"heading": "Cycle history", "message": "No cycles yet."})


@role_required(LEAD)
def selection(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"heading": "Sample selection", "message": "No models yet."})
